"""Monthly chargeback statements per owner: model, queries' consumer, CSV/JSON and PDFs."""
