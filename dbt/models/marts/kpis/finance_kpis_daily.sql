{{ config(materialized='view') }}

{{ published_history(ref('finance_kpis_history')) }}
