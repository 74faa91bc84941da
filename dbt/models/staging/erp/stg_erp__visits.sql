with

source as (

    select * from {{ source('erp', 'visits') }}

),

renamed as (

    select
        visit_id,
        customer_id,
        visit_date,
        visit_level,
        visited_by
    from source

)

select * from renamed
