-- work_center_versions: work centres as each change set them.
SELECT company, plant, work_center, description, capacity_hours_per_day, cost_rate_per_hour,
       cost_center, event_position
FROM production_work_center_rows
