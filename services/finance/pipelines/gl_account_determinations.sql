-- gl_account_determinations: every version of each company's account determination, one row
-- per determined account (valuation_class '' holds the company's defaults).
SELECT company, valuation_class, account_key, account, event_position, recorded_at
FROM finance_account_determinations
