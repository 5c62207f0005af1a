-- Work centres as they are now.
CREATE VIEW work_centers AS
SELECT company, plant, work_center, description, capacity_hours_per_day, cost_rate_per_hour,
       cost_center
FROM (
    SELECT *, row_number() OVER (PARTITION BY company, plant, work_center
                                 ORDER BY event_position DESC) AS newest
    FROM work_center_versions
) ranked
WHERE newest = 1
