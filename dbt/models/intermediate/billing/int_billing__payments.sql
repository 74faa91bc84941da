-- Payments in their company's book (see int_billing__invoices).
{{ config(materialized='view') }}

{{ in_company_books(
    ref('stg_billing__payments'),
    ['payment_id', 'customer_id', 'payment_date', 'payment_method'],
    'payment_document_amount', 'payment_amount', 'payment_date') }}
