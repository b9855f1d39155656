-- Versions compare numerically part by part; a missing or non-numeric part counts as 0.
-- osVersion >= "17.2": (major, minor) >= (17, 2); applicationVersion >= "5.10": >= (5, 10).
SELECT count(*) AS n
FROM installations
WHERE platform = 'iOS'
  AND push_registration_enabled
  AND state <> 'uninstalled'
  AND (coalesce(TRY_CAST(split_part(os_version, '.', 1) AS BIGINT), 0) > 17
       OR (coalesce(TRY_CAST(split_part(os_version, '.', 1) AS BIGINT), 0) = 17
           AND coalesce(TRY_CAST(split_part(os_version, '.', 2) AS BIGINT), 0) >= 2))
  AND (coalesce(TRY_CAST(split_part(application_version, '.', 1) AS BIGINT), 0) > 5
       OR (coalesce(TRY_CAST(split_part(application_version, '.', 1) AS BIGINT), 0) = 5
           AND coalesce(TRY_CAST(split_part(application_version, '.', 2) AS BIGINT), 0) >= 10))
