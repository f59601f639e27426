"""The service index (Decision 766/QĐ-TTg): indicator catalog, submissions and scoring."""
