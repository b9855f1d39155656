-- A person matches if any (person, installation) pair matches; a person without installations
-- is one pair with a missing installation, and `not pushRegistrationEnabled` is true there.
SELECT count(*) AS n
FROM persons p
WHERE array_length(p.emails) > 0
  AND EXISTS (
    SELECT 1 FROM event_Purchase b
    WHERE b.person_id = p.person_id
      AND b.event_time >= TIMESTAMP '{as_of}' - INTERVAL '180 days'
      AND b.event_time < TIMESTAMP '{as_of}'
      AND b.{period} >= {period_from:180d})
  AND (EXISTS (SELECT 1 FROM installations i
               WHERE i.person_id = p.person_id AND NOT i.push_registration_enabled)
       OR NOT EXISTS (SELECT 1 FROM installations i WHERE i.person_id = p.person_id))
