"""The hub worker: runs tasks on the phones attached to this machine. Broker credentials only."""
