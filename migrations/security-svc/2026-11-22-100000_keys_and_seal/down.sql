DROP TABLE IF EXISTS vottery_security_key_versions;
DROP TABLE IF EXISTS vottery_security_keys;
DROP TABLE IF EXISTS vottery_security_seal;
