-- Invoices in their company's book: their own currency (document_*) and the company's
-- (invoice_amount). Every total downstream adds company-currency amounts only.
{{ config(materialized='view') }}

{{ in_company_books(
    ref('stg_billing__invoices'),
    ['invoice_id', 'invoice_number', 'customer_id', 'order_id', 'invoice_date', 'due_date', 'invoice_status'],
    'document_amount', 'invoice_amount', 'invoice_date') }}
