-- first(Install) is per person over all history; `within 30d` on a time value means
-- [as-of - 30d, as-of]. installation.count counts this device's launches; a device with none has 0.
WITH new_persons AS (
  SELECT person_id
  FROM event_Install
  WHERE event_time < TIMESTAMP '{as_of}'
  GROUP BY person_id
  HAVING min(event_time) >= TIMESTAMP '{as_of}' - INTERVAL '30 days'
), device_launches AS (
  SELECT installation_id, count(*) AS launches
  FROM event_AppLaunch
  WHERE installation_id IS NOT NULL
    AND event_time >= TIMESTAMP '{as_of}' - INTERVAL '7 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:7d}
  GROUP BY installation_id
)
SELECT count(*) AS n
FROM installations i
JOIN new_persons np ON np.person_id = i.person_id
LEFT JOIN device_launches d ON d.installation_id = i.installation_id
WHERE i.push_registration_enabled
  AND coalesce(d.launches, 0) < 2
