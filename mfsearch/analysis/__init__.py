"""After a search: read a sweep back from MLflow, its Pareto fronts, plots and dashboard."""
