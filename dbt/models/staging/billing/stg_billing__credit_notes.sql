with

source as (

    select * from {{ source('billing', 'credit_notes') }}

),

renamed as (

    select
        credit_note_id,
        invoice_id,
        customer_id,
        credit_date,
        amount as credit_amount,
        reason as credit_reason
    from source

)

select * from renamed
