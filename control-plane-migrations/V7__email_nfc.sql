-- E-mail addresses are now stored in Unicode NFC, lower case (control::Email):
-- `josé` typed with a precomposed é and with e + a combining accent are one
-- address. Rewrite what was stored before, unless that would merge two
-- accounts (left as they are, for an operator to resolve).
UPDATE users u SET email = lower(normalize(u.email, NFC))
 WHERE u.email IS DISTINCT FROM lower(normalize(u.email, NFC))
   AND NOT EXISTS (SELECT 1 FROM users o WHERE o.email = lower(normalize(u.email, NFC)));
UPDATE invitations SET email = lower(normalize(email, NFC))
 WHERE email IS DISTINCT FROM lower(normalize(email, NFC));
UPDATE attempts SET email = lower(normalize(email, NFC))
 WHERE email IS DISTINCT FROM lower(normalize(email, NFC));
