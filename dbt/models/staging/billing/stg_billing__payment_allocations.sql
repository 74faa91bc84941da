with

source as (

    select * from {{ source('billing', 'payment_allocations') }}

),

renamed as (

    select
        payment_id,
        invoice_id,
        amount as allocated_amount
    from source

)

select * from renamed
