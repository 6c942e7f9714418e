package functions

// MaxRetries is maxRetries: a run's last attempt is attempt MaxRetries.
const MaxRetries = maxRetries

// Truncate is truncate.
var Truncate = truncate
