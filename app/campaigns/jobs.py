"""Background jobs of the campaigns feature (registered in app.jobs.operations.REGISTRY)."""
from app.certificates import operations as certificates
from app.extensions import db

from .models import Campaign


def run_batch(job, progress) -> dict:
    """Job: issue a registered campaign's certificates, then render its print package."""
    campaign = db.session.get(Campaign, job.params["campaign"])
    return certificates.run_campaign_batch(job, campaign, progress)
