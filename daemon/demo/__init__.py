"""`sportello demo` and what only it uses: an embedded IMAP server, sample mail and a local SMTP sink."""
