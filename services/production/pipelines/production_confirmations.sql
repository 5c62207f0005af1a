-- production_confirmations: one row per operation confirmation.
SELECT company, production_order, confirmation, operation, work_center, cost_center,
       posting_date, yield_quantity, scrap_quantity, setup_hours, run_hours, activity_value,
       final_confirmation, event_position
FROM production_confirmation_rows
