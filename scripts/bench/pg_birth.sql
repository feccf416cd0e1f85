-- The PostgreSQL equivalent of one birth registered through the gateway:
-- the mother read (active), her household and its head read, the county's
-- next sequence number for the day taken, the child written (with the
-- persons table's indexes), the event appended and a durable audit row,
-- in one transaction (synchronous_commit on, fsync on).
\set m random(1, :mothers)
SELECT id_number AS mother, household_id AS hh FROM mothers WHERE n = :m \gset
BEGIN;
SELECT status, household_id, committee_code FROM persons WHERE id_number = :mother FOR SHARE;
SELECT head_id_number, committee_code FROM households WHERE household_id = :hh FOR SHARE;
SELECT name, sex, status FROM persons WHERE id_number = (SELECT head_id_number FROM households WHERE household_id = :hh);
INSERT INTO id_counters VALUES (left(:hh, 6), current_date, 10000) ON CONFLICT (county, day)
  DO UPDATE SET next = id_counters.next + 1 RETURNING next AS seqno \gset
INSERT INTO persons (id_number, name, sex, birth_date, household_id, committee_code, status)
  SELECT left(:hh, 6) || to_char(current_date, 'YYYYMMDD') || :seqno, '测试婴儿', 'male', current_date, :hh, committee_code, 'active'
  FROM households WHERE household_id = :hh;
INSERT INTO events (at, kind, id_numbers, household_id, actor)
  VALUES (now(), 'birth', ARRAY[left(:hh, 6) || to_char(current_date, 'YYYYMMDD') || :seqno, :mother], :hh, 'public_security/loadtest');
INSERT INTO audit (at, department, interface, purpose, subject, fields, decision)
  VALUES (now(), 'public_security', 'SubmitLifeEvent', 'HOUSEHOLD_REGISTRATION', md5(:mother), '{birth}', 'allowed');
COMMIT;
