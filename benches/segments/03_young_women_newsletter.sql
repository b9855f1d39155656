-- age >= 18  <=>  born on or before as-of minus 18 years; age < 30  <=>  born after as-of minus
-- 30 years (a missing birth date matches neither). `emails is set`: present and not empty.
SELECT count(*) AS n
FROM persons
WHERE birth_date <= CAST(TIMESTAMP '{as_of}' - INTERVAL '18 years' AS DATE)
  AND birth_date > CAST(TIMESTAMP '{as_of}' - INTERVAL '30 years' AS DATE)
  AND gender = 'female'
  AND (custom_newsletter OR array_has(tags, 'newsletter'))
  AND array_length(emails) > 0
