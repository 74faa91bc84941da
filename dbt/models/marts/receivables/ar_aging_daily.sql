{{ config(materialized='view') }}

{{ published_history(ref('ar_aging_history')) }}
