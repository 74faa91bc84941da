-- Credit notes in their company's book (see int_billing__invoices).
{{ config(materialized='view') }}

{{ in_company_books(
    ref('stg_billing__credit_notes'),
    ['credit_note_id', 'invoice_id', 'customer_id', 'credit_date', 'credit_reason'],
    'credit_document_amount', 'credit_amount', 'credit_date') }}
