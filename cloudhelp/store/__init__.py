"""Storage: the database engine and sessions, the models, the migrations; the throttles' counts
in Redis when several nodes share them."""
