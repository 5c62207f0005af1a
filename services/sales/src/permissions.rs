//! Sales' permissions and the built-in roles that hold them (`administrator` holds all).

use tributary_kernel::auth::Permission;
use tributary_kernel::auth::role::{
    ACCOUNTANT, ANALYST, AUDITOR, FINANCE_MANAGER, SALES_CLERK, WAREHOUSE_CLERK,
};

pub static MASTER_DATA_READ: Permission = Permission {
    name: "sales.master_data.read",
    description: "Read customers, price lists and pricing conditions",
    roles: &[SALES_CLERK, FINANCE_MANAGER, ACCOUNTANT, ANALYST, AUDITOR],
};
pub static CUSTOMER_WRITE: Permission = Permission {
    name: "sales.customer.write",
    description: "Create customers",
    roles: &[SALES_CLERK],
};
pub static CUSTOMER_BANK_ACCOUNT_READ: Permission = Permission {
    name: "sales.customer.bank_account.read",
    description: "See customers' bank account numbers in clear (others see the last four characters)",
    roles: &[FINANCE_MANAGER, ACCOUNTANT],
};
pub static PRICING_WRITE: Permission = Permission {
    name: "sales.pricing.write",
    description: "Record prices, discounts, tax rates and materials' tax classifications",
    roles: &[SALES_CLERK],
};
pub static CREDIT_MANAGE: Permission = Permission {
    name: "sales.credit.manage",
    description: "Set customers' credit limits, block and unblock customers, release orders blocked for credit",
    roles: &[FINANCE_MANAGER],
};

pub static ORDER_READ: Permission = Permission {
    name: "sales.order.read",
    description: "Read quotations and sales orders",
    roles: &[
        SALES_CLERK,
        WAREHOUSE_CLERK,
        FINANCE_MANAGER,
        ACCOUNTANT,
        ANALYST,
        AUDITOR,
    ],
};
pub static ORDER_WRITE: Permission = Permission {
    name: "sales.order.write",
    description: "Create quotations and sales orders, change and cancel their open lines",
    roles: &[SALES_CLERK],
};

pub static DELIVERY_POST: Permission = Permission {
    name: "sales.delivery.post",
    description: "Post deliveries (the goods issue to the customer)",
    roles: &[WAREHOUSE_CLERK, SALES_CLERK],
};

pub static BILLING_POST: Permission = Permission {
    name: "sales.billing.post",
    description: "Bill delivered quantities and post credit memos for returns",
    roles: &[SALES_CLERK, ACCOUNTANT],
};
pub static PAYMENT_POST: Permission = Permission {
    name: "sales.payment.post",
    description: "Post customer payments",
    roles: &[ACCOUNTANT, FINANCE_MANAGER],
};
pub static RECEIVABLES_READ: Permission = Permission {
    name: "sales.receivables.read",
    description: "Read invoices, credit memos, customer payments and open items",
    roles: &[SALES_CLERK, FINANCE_MANAGER, ACCOUNTANT, ANALYST, AUDITOR],
};

pub fn all() -> Vec<&'static Permission> {
    vec![
        &MASTER_DATA_READ,
        &CUSTOMER_WRITE,
        &CUSTOMER_BANK_ACCOUNT_READ,
        &PRICING_WRITE,
        &CREDIT_MANAGE,
        &ORDER_READ,
        &ORDER_WRITE,
        &DELIVERY_POST,
        &BILLING_POST,
        &PAYMENT_POST,
        &RECEIVABLES_READ,
    ]
}
