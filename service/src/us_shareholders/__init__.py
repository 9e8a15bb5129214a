"""us-shareholders: the weekly US share-holder mailer, built on streamtable."""
