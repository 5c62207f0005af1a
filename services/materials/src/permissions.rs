//! Materials' permissions and the built-in roles that hold them (`administrator` holds all).

use tributary_kernel::auth::Permission;
use tributary_kernel::auth::role::{
    ACCOUNTANT, ANALYST, AUDITOR, FINANCE_MANAGER, PURCHASER, WAREHOUSE_CLERK,
};

pub static MASTER_DATA_READ: Permission = Permission {
    name: "materials.master_data.read",
    description: "Read plants, storage locations, materials and vendors",
    roles: &[
        PURCHASER,
        WAREHOUSE_CLERK,
        FINANCE_MANAGER,
        ACCOUNTANT,
        ANALYST,
        AUDITOR,
    ],
};
pub static PLANT_WRITE: Permission = Permission {
    name: "materials.plant.write",
    description: "Create plants and their storage locations",
    roles: &[],
};
pub static MATERIAL_WRITE: Permission = Permission {
    name: "materials.material.write",
    description: "Create materials",
    roles: &[PURCHASER],
};
pub static VENDOR_WRITE: Permission = Permission {
    name: "materials.vendor.write",
    description: "Create vendors",
    roles: &[PURCHASER],
};
pub static VENDOR_BANK_ACCOUNT_READ: Permission = Permission {
    name: "materials.vendor.bank_account.read",
    description: "See vendors' bank account numbers in clear (others see the last four characters)",
    roles: &[FINANCE_MANAGER, ACCOUNTANT],
};
pub static PURCHASE_ORDER_READ: Permission = Permission {
    name: "materials.purchase_order.read",
    description: "Read purchase orders",
    roles: &[
        PURCHASER,
        WAREHOUSE_CLERK,
        FINANCE_MANAGER,
        ACCOUNTANT,
        ANALYST,
        AUDITOR,
    ],
};
pub static PURCHASE_ORDER_WRITE: Permission = Permission {
    name: "materials.purchase_order.write",
    description: "Create, change, cancel lines of and close purchase orders",
    roles: &[PURCHASER],
};
pub static GOODS_RECEIPT_POST: Permission = Permission {
    name: "materials.goods_receipt.post",
    description: "Post goods receipts for purchase orders",
    roles: &[WAREHOUSE_CLERK],
};
pub static VENDOR_RETURN_POST: Permission = Permission {
    name: "materials.vendor_return.post",
    description: "Return received goods to the vendor",
    roles: &[WAREHOUSE_CLERK, PURCHASER],
};
pub static GOODS_ISSUE_POST: Permission = Permission {
    name: "materials.goods_issue.post",
    description: "Post goods issues and scrapping",
    roles: &[WAREHOUSE_CLERK],
};
pub static STOCK_TRANSFER_POST: Permission = Permission {
    name: "materials.stock_transfer.post",
    description: "Transfer stock between storage locations",
    roles: &[WAREHOUSE_CLERK],
};
pub static PHYSICAL_COUNT_POST: Permission = Permission {
    name: "materials.physical_count.post",
    description: "Post physical inventory counts",
    roles: &[WAREHOUSE_CLERK],
};
pub static STOCK_READ: Permission = Permission {
    name: "materials.stock.read",
    description: "Read stock on hand and its value",
    roles: &[
        WAREHOUSE_CLERK,
        PURCHASER,
        FINANCE_MANAGER,
        ACCOUNTANT,
        ANALYST,
        AUDITOR,
    ],
};
pub static VENDOR_INVOICE_POST: Permission = Permission {
    name: "materials.vendor_invoice.post",
    description: "Post vendor invoices and credit memos, release blocked invoices",
    roles: &[FINANCE_MANAGER, ACCOUNTANT],
};
pub static VENDOR_INVOICE_READ: Permission = Permission {
    name: "materials.vendor_invoice.read",
    description: "Read vendor invoices, payments and the payables aging",
    roles: &[FINANCE_MANAGER, ACCOUNTANT, PURCHASER, ANALYST, AUDITOR],
};
pub static VENDOR_PAYMENT_POST: Permission = Permission {
    name: "materials.vendor_payment.post",
    description: "Pay vendor invoices",
    roles: &[FINANCE_MANAGER, ACCOUNTANT],
};

pub fn all() -> Vec<&'static Permission> {
    vec![
        &MASTER_DATA_READ,
        &PLANT_WRITE,
        &MATERIAL_WRITE,
        &VENDOR_WRITE,
        &VENDOR_BANK_ACCOUNT_READ,
        &PURCHASE_ORDER_READ,
        &PURCHASE_ORDER_WRITE,
        &GOODS_RECEIPT_POST,
        &VENDOR_RETURN_POST,
        &GOODS_ISSUE_POST,
        &STOCK_TRANSFER_POST,
        &PHYSICAL_COUNT_POST,
        &STOCK_READ,
        &VENDOR_INVOICE_POST,
        &VENDOR_INVOICE_READ,
        &VENDOR_PAYMENT_POST,
    ]
}
