// Every page of the single-page app, in navigation order. A page module
// exports {route, roles, title, render(root, ctx)} (web/README.md); one
// line here registers it. A role's home is its first page in this list.

import { login } from './login.js';
import { desk, deskOne } from './referent/desk.js';
import { people, person } from './referent/people.js';
import { offers } from './referent/offers.js';

// ---- webvenue: imports below this line ----
import { partnerOffers, partnerOffer, partnerGuests } from './partner/offers.js';
import { checkin } from './partner/checkin.js';
import { adminReport } from './admin/report.js';
import { adminPartners, adminStructures, adminUsers } from './admin/accounts.js';
import { adminAudit } from './admin/audit.js';
// ---- end of webvenue imports ----
import { account } from './account.js';

export default [
	login,
	desk,
	deskOne,
	offers,
	people,
	person,
	// ---- webvenue: pages below this line ----
	partnerOffers,
	partnerOffer,
	partnerGuests,
	adminReport,
	adminPartners,
	adminStructures,
	adminUsers,
	adminAudit,
	checkin,
	// ---- end of webvenue pages ----
	account,
];
