"""hashcore: a Stratum V1 Bitcoin (SHA-256d) miner core with interchangeable backends."""
