-- The person's purchases at their latest purchase time; of those, the largest category that is
-- present (max skips nulls; a person whose latest purchases have none does not match).
WITH last_purchase AS (
  SELECT person_id, max(category) AS category
  FROM (
    SELECT person_id, category, event_time,
           max(event_time) OVER (PARTITION BY person_id) AS last_time
    FROM event_Purchase
    WHERE event_time < TIMESTAMP '{as_of}'
  ) t
  WHERE event_time = last_time
  GROUP BY person_id
)
SELECT count(*) AS n
FROM installations i
JOIN last_purchase l ON l.person_id = i.person_id
WHERE l.category = 'fashion'
  AND i.platform = 'iOS'
  AND i.push_registration_enabled
