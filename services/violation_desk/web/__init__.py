"""The review web app (FastAPI, server-rendered) and its REST API."""
