-- engaged-eu: person.country in (HR, SI, AT, DE) and count(AppLaunch within 30d) >= 5;
-- recent-buyers: did(Purchase within 30d); randomBucket is a multiplicative hash of person_id.
WITH engaged AS (
  SELECT person_id
  FROM event_AppLaunch
  WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '30 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:30d}
  GROUP BY person_id
  HAVING count(*) >= 5
)
SELECT count(*) AS n
FROM installations i
JOIN persons p ON p.person_id = i.person_id
JOIN engaged e ON e.person_id = i.person_id
WHERE p.country IN ('HR', 'SI', 'AT', 'DE')
  AND i.push_registration_enabled
  AND ((p.person_id * 2654435761 + 40503) % 4294967291) % 10000 < 9000
  AND NOT EXISTS (
    SELECT 1 FROM event_Purchase b
    WHERE b.person_id = i.person_id
      AND b.event_time >= TIMESTAMP '{as_of}' - INTERVAL '30 days'
      AND b.event_time < TIMESTAMP '{as_of}'
      AND b.{period} >= {period_from:30d})
