//! Pure HTTP semantics: the query, Range, conditionals, status and headers.
