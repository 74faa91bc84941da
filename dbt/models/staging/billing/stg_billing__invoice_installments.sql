with

source as (

    select * from {{ source('billing', 'invoice_installments') }}

),

renamed as (

    select
        invoice_id,
        installment_no,
        due_date as installment_due_date,
        amount as installment_document_amount
    from source

)

select * from renamed
