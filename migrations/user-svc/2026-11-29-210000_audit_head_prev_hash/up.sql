-- The hash the head held before its last move. The statement that appends an audit row moves
-- the head and reads, under that row's lock, the previous hash the new row links to.
ALTER TABLE vottery_audit_chain_heads ADD COLUMN IF NOT EXISTS prev_hash TEXT;
