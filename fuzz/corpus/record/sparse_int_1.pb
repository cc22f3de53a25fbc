

values: