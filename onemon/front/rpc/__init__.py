"""OpenNebula's XML-RPC conventions: envelope, parameters, error codes, dispatch, HTTP server."""
