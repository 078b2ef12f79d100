// Catalogue français (langue par défaut). Clés → textes ; {nom} est
// remplacé par la valeur donnée à t(). Voir web/README.md.
export default {
	// ---- shell ----
	'shell.skip': 'Aller au contenu',
	'shell.nav': 'Navigation principale',
	'shell.other_language': 'English',
	'shell.logout': 'Se déconnecter',
	'shell.logged_out': 'Vous êtes déconnecté·e.',

	// ---- commun ----
	'ui.ok': 'Confirmer',
	'ui.cancel': 'Annuler',
	'ui.close': 'Fermer',
	'ui.loading': 'Chargement…',
	'ui.save': 'Enregistrer',
	'ui.search': 'Rechercher',
	'ui.more': 'Voir plus',
	'ui.none': 'Aucun résultat.',
	'ui.yes': 'oui',
	'ui.no': 'non',

	'login.title': 'Connexion',
	'login.intro': 'Connectez-vous avec l’adresse e-mail et le mot de passe de votre compte strapontin.',
	'login.email': 'Adresse e-mail',
	'login.password': 'Mot de passe',
	'login.submit': 'Se connecter',

	// États d'une permanence, d'une réservation, d'une liste d'attente.
	'state.scheduled': 'prévue',
	'state.open': 'ouverte',
	'state.drawn': 'tirée au sort',
	'state.closed': 'fermée',
	'status.confirmed': 'confirmée',
	'status.cancelled': 'annulée',
	'status.cancelled_by_partner': 'annulée par le lieu',
	'status.attended': 'venu·e',
	'status.no_show': 'absent·e',
	'status.published': 'publiée',
	'wl.waiting': 'en attente',
	'wl.offered': 'place proposée',
	'wl.accepted': 'acceptée',
	'wl.expired': 'expirée',
	'wl.left': 'quittée',
	'wl.cancelled': 'annulée',

	'cat.show': 'Spectacle',
	'cat.concert': 'Concert',
	'cat.cinema': 'Cinéma',
	'cat.heritage': 'Patrimoine',
	'cat.museum': 'Musée',
	'cat.sport': 'Sport',
	'cat.festival': 'Festival',
	'cat.workshop': 'Atelier',
	'cat.other': 'Autre',

	// Erreurs de l'API : err.<raison>.<champ>, sinon err.<raison>.
	'err.required': 'Ce champ est obligatoire.',
	'err.session_ended': 'Votre session est terminée : reconnectez-vous.',
	'err.parse_error': 'Le serveur n’a pas compris la demande.',
	'err.invalid_request': 'Le serveur n’a pas compris la demande.',
	'err.method_not_found': 'Cette action n’existe pas sur ce serveur.',
	'err.invalid_params': 'Valeur refusée : {message}',
	'err.internal_error': 'Erreur inattendue du serveur. Réessayez ; si elle revient, signalez-la.',
	'err.unauthenticated': 'Adresse e-mail ou mot de passe incorrect.',
	'err.forbidden': 'Votre compte ne permet pas cette action.',
	'err.not_found': 'Introuvable (ou hors de votre structure).',
	'err.sold_out': 'Complet : il reste {seats_available} place(s) sur {seats_total}.',
	'err.deadline_passed': 'Trop tard : la date limite était le {booking_deadline}.',
	'err.deadline_passed.permanence_id': 'Cette permanence est passée.',
	'err.offer_cancelled': 'Cette sortie a été annulée par le lieu.',
	'err.limit_reached': 'Limite atteinte pour cette personne ({limit}).',
	'err.duplicate': 'Cette personne a déjà une place ou est déjà en liste d’attente pour cette sortie.',
	'err.duplicate.email': 'Un compte existe déjà avec cette adresse e-mail.',
	'err.already_used': 'Ce billet a déjà servi ou la sortie a eu lieu.',
	'err.permanence_state': 'Impossible : la permanence est {state}.',
	'err.seats_taken': 'Des places sont déjà prises.',
	'err.waitlist_state': 'Impossible dans l’état actuel de la liste d’attente.',
	'err.waitlist_state.seats': 'Il reste des places : réservez directement.',
	'err.too_large': 'Trop de résultats : réduisez la période.',
	'err.rate_limited': 'Trop d’essais : réessayez dans {retry_after_s} secondes.',
	'err.unavailable': 'Le serveur est momentanément injoignable. Réessayez.',
	'err.timeout': 'Le serveur a mis trop de temps à répondre. Réessayez.',
	'err.invalid_params.consent': 'L’accord de la personne est obligatoire.',
	'err.invalid_params.seats': 'Nombre de places refusé : {message}',
	'err.invalid_params.choices': 'Choisissez de une à trois sorties différentes.',

	// ---- webvenue : clés ci-dessous (lieu, coordination, bon, page publique) ----
	// ---- fin des clés webvenue ----

	// ---- référent ----
};
