-- The keyed hash of the citizen's phone (HMAC, [intake] contact_hash_key): the same citizen found
-- again without the number in clear. citizen_name and citizen_phone hold sealed values.
ALTER TABLE submissions ADD COLUMN citizen_phone_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX submissions_phone_hash ON submissions (citizen_phone_hash);
