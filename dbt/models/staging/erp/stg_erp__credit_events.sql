with

source as (

    select * from {{ source('erp', 'credit_events') }}

),

renamed as (

    select
        event_id as credit_event_id,
        customer_id,
        event_date,
        event_type,
        amount as event_amount,
        note
    from source

)

select * from renamed
