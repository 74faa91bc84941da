with

source as (

    select * from {{ source('billing', 'payments') }}

),

renamed as (

    select
        payment_id,
        customer_id,
        payment_date,
        company_id,
        upper(btrim(currency)) as document_currency,
        amount as payment_document_amount,
        company_amount as booked_company_amount,
        method as payment_method
    from source

)

select * from renamed
