DROP TABLE IF EXISTS vottery_security_guardian_backups;
DROP TABLE IF EXISTS vottery_security_guardians;
