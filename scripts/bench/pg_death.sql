-- The PostgreSQL equivalent of one death registered through the gateway:
-- the next person of the list read (active) and locked, the household's
-- head and remaining members read (who leaves, whether it closes), the
-- person deregistered, the event appended and a durable audit row, in one
-- transaction (synchronous_commit on, fsync on).
SELECT nextval('dying_next') AS d \gset
SELECT id_number AS victim FROM dying WHERE n = :d \gset
BEGIN;
SELECT status, household_id AS hh FROM persons WHERE id_number = :victim FOR UPDATE \gset
SELECT head_id_number FROM households WHERE household_id = :hh FOR UPDATE;
SELECT count(*) FROM persons WHERE household_id = :hh AND status = 'active';
UPDATE persons SET status = 'deceased' WHERE id_number = :victim;
INSERT INTO events (at, kind, id_numbers, household_id, actor)
  VALUES (now(), 'death', ARRAY[:victim], :hh, 'public_security/loadtest');
INSERT INTO audit (at, department, interface, purpose, subject, fields, decision)
  VALUES (now(), 'public_security', 'SubmitLifeEvent', 'HOUSEHOLD_REGISTRATION', md5(:victim), '{death}', 'allowed');
COMMIT;
