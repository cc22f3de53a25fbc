

values