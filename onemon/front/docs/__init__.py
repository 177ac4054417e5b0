"""OpenNebula's XML documents (HOST, HOST_POOL, VM, VM_POOL, MONITORING_DATA) from the state."""
