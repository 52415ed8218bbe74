"""Pages the Airflow UI shows (mounted by the plugin in ``plugins/``), read-only."""
