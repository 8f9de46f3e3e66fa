-- The customer's tables are never dropped by this service.
SELECT 1;
