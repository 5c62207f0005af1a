-- gl_journal_lines: one row per posted journal line.
-- Source finance_journal_lines: JournalEntryPosted events from finance.events, one row per line.
SELECT
    company,
    entry_id,
    line_no,
    posting_date,
    document_date,
    period,
    account,
    debit,
    credit,
    currency,
    cost_center,
    line_text,
    reference,
    entry_text,
    reversal_of,
    event_id,
    event_position,
    recorded_at
FROM finance_journal_lines
