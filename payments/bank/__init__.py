"""What comes back from the bank: status reports (pain.002) and returns (camt.054)."""
