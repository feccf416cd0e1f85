-- The PostgreSQL equivalent of one consent-checked person query through the
-- gateway: look up the subject's consent, read the person, append a durable
-- audit row, in one transaction (synchronous_commit on, fsync on).
\set n random(1, :subjects)
SELECT id_number AS id FROM subjects WHERE n = :n \gset
BEGIN;
SELECT valid_until, use_limit, uses FROM consents
 WHERE subject = :id AND department = 'hrss' AND interface = 'PersonSummary' AND purpose = 'EMPLOYMENT_SERVICE';
SELECT name, sex, birth_date, committee_code, status FROM persons WHERE id_number = :id;
INSERT INTO audit (at, department, interface, purpose, subject, fields, decision)
 VALUES (now(), 'hrss', 'PersonSummary', 'EMPLOYMENT_SERVICE', md5(:id), '{name,sex,birth_year,residence_status,place}', 'allowed');
COMMIT;
