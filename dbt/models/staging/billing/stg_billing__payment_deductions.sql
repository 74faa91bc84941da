with

source as (

    select * from {{ source('billing', 'payment_deductions') }}

),

renamed as (

    select
        deduction_id,
        payment_id,
        invoice_id,
        customer_id,
        amount as deduction_amount,
        reason_code,
        claim_reference
    from source

)

select * from renamed
