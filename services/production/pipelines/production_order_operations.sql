-- production_order_operations: each production order's operations as created.
SELECT company, production_order, operation, work_center, start_date, planned_hours,
       event_position
FROM production_order_operation_rows
