//! Finance's permissions and the built-in roles that hold them (`administrator` holds all).

use tributary_kernel::auth::Permission;
use tributary_kernel::auth::role::{
    ACCOUNTANT, ANALYST, AUDITOR, FINANCE_MANAGER, PURCHASER, WAREHOUSE_CLERK,
};

/// Everyone who works in a company reads its name.
pub static COMPANY_READ: Permission = Permission {
    name: "finance.company.read",
    description: "List the companies",
    roles: &[
        FINANCE_MANAGER,
        ACCOUNTANT,
        PURCHASER,
        WAREHOUSE_CLERK,
        ANALYST,
        AUDITOR,
    ],
};
pub static COMPANY_WRITE: Permission = Permission {
    name: "finance.company.write",
    description: "Create a company",
    roles: &[],
};
pub static ACCOUNT_READ: Permission = Permission {
    name: "finance.account.read",
    description: "Read the chart of accounts",
    roles: &[FINANCE_MANAGER, ACCOUNTANT, ANALYST, AUDITOR],
};
pub static ACCOUNT_WRITE: Permission = Permission {
    name: "finance.account.write",
    description: "Create, rename, block and unblock accounts",
    roles: &[FINANCE_MANAGER],
};
pub static FISCAL_YEAR_WRITE: Permission = Permission {
    name: "finance.fiscal_year.write",
    description: "Open a fiscal year with its periods",
    roles: &[FINANCE_MANAGER],
};
pub static PERIOD_CLOSE: Permission = Permission {
    name: "finance.period.close",
    description: "Close a posting period",
    roles: &[FINANCE_MANAGER],
};
pub static PERIOD_REOPEN: Permission = Permission {
    name: "finance.period.reopen",
    description: "Reopen a closed posting period",
    roles: &[FINANCE_MANAGER],
};
pub static JOURNAL_ENTRY_POST: Permission = Permission {
    name: "finance.journal_entry.post",
    description: "Post a journal entry",
    roles: &[FINANCE_MANAGER, ACCOUNTANT],
};
pub static JOURNAL_ENTRY_REVERSE: Permission = Permission {
    name: "finance.journal_entry.reverse",
    description: "Reverse a posted journal entry",
    roles: &[FINANCE_MANAGER, ACCOUNTANT],
};
pub static JOURNAL_ENTRY_READ: Permission = Permission {
    name: "finance.journal_entry.read",
    description: "Read journal entries",
    roles: &[FINANCE_MANAGER, ACCOUNTANT, ANALYST, AUDITOR],
};
pub static BALANCE_READ: Permission = Permission {
    name: "finance.balance.read",
    description: "Read account balances and the trial balance",
    roles: &[FINANCE_MANAGER, ACCOUNTANT, ANALYST, AUDITOR],
};
pub static ACCOUNT_DETERMINATION_READ: Permission = Permission {
    name: "finance.account_determination.read",
    description: "Read which accounts automatic postings use",
    roles: &[FINANCE_MANAGER, ACCOUNTANT, AUDITOR],
};
pub static ACCOUNT_DETERMINATION_WRITE: Permission = Permission {
    name: "finance.account_determination.write",
    description: "Set which accounts automatic postings use",
    roles: &[FINANCE_MANAGER],
};

pub fn all() -> Vec<&'static Permission> {
    vec![
        &COMPANY_READ,
        &COMPANY_WRITE,
        &ACCOUNT_READ,
        &ACCOUNT_WRITE,
        &FISCAL_YEAR_WRITE,
        &PERIOD_CLOSE,
        &PERIOD_REOPEN,
        &JOURNAL_ENTRY_POST,
        &JOURNAL_ENTRY_REVERSE,
        &JOURNAL_ENTRY_READ,
        &BALANCE_READ,
        &ACCOUNT_DETERMINATION_READ,
        &ACCOUNT_DETERMINATION_WRITE,
    ]
}
